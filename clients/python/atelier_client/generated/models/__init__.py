"""Contains all the data models used in inputs/outputs"""

from .add_asset_files_body import AddAssetFilesBody
from .add_asset_files_body_kind import AddAssetFilesBodyKind
from .add_asset_json_body import AddAssetJsonBody
from .add_asset_json_body_kind import AddAssetJsonBodyKind
from .api_key import ApiKey
from .asset_out import AssetOut
from .asset_out_kind import AssetOutKind
from .audit_records import AuditRecords
from .audit_records_records_item import AuditRecordsRecordsItem
from .body_register_twin import BodyRegisterTwin
from .c2_pa_report import C2PaReport
from .consent_answer import ConsentAnswer
from .consent_body import ConsentBody
from .consent_history import ConsentHistory
from .consent_record_out import ConsentRecordOut
from .consent_terms import ConsentTerms
from .consent_terms_state import ConsentTermsState
from .delivery_answer import DeliveryAnswer
from .delivery_id_body import DeliveryIdBody
from .delivery_settings import DeliverySettings
from .detect_image_files_body import DetectImageFilesBody
from .detect_response import DetectResponse
from .detect_response_training_mining_type_0 import DetectResponseTrainingMiningType0
from .edit_request import EditRequest
from .edit_request_output_format import EditRequestOutputFormat
from .edit_source import EditSource
from .error_body import ErrorBody
from .error_detail import ErrorDetail
from .evict_response import EvictResponse
from .garment_ref import GarmentRef
from .garment_ref_category import GarmentRefCategory
from .generate_request import GenerateRequest
from .generate_request_output_format import GenerateRequestOutputFormat
from .generate_response import GenerateResponse
from .get_brand_statement_format import GetBrandStatementFormat
from .get_talent_statement_format import GetTalentStatementFormat
from .get_talent_usage_format import GetTalentUsageFormat
from .get_talent_usage_period import GetTalentUsagePeriod
from .get_usage_format import GetUsageFormat
from .get_usage_period import GetUsagePeriod
from .image_out import ImageOut
from .image_out_format import ImageOutFormat
from .item_delivery_state import ItemDeliveryState
from .item_redeliver_answer import ItemRedeliverAnswer
from .item_redeliver_body import ItemRedeliverBody
from .job_accepted import JobAccepted
from .job_decision import JobDecision
from .job_decision_output import JobDecisionOutput
from .job_image import JobImage
from .job_image_format import JobImageFormat
from .job_item_result import JobItemResult
from .job_item_result_metadata_type_0 import JobItemResultMetadataType0
from .job_item_spec import JobItemSpec
from .job_item_spec_metadata import JobItemSpecMetadata
from .job_item_spec_output_format import JobItemSpecOutputFormat
from .job_item_spec_size_type_0 import JobItemSpecSizeType0
from .job_list import JobList
from .job_page import JobPage
from .job_page_output import JobPageOutput
from .job_reject_body import JobRejectBody
from .job_reject_body_reasons import JobRejectBodyReasons
from .job_review_body import JobReviewBody
from .job_submit_body import JobSubmitBody
from .job_summary import JobSummary
from .job_summary_output import JobSummaryOutput
from .key_create_body import KeyCreateBody
from .key_create_body_scopes_item import KeyCreateBodyScopesItem
from .key_created import KeyCreated
from .key_id_body import KeyIdBody
from .key_list import KeyList
from .key_revoked import KeyRevoked
from .licence_decision_body import LicenceDecisionBody
from .licence_decision_body_decision import LicenceDecisionBodyDecision
from .licence_document import LicenceDocument
from .licence_document_licence import LicenceDocumentLicence
from .licence_id_body import LicenceIdBody
from .licence_list import LicenceList
from .licence_out import LicenceOut
from .licence_out_status import LicenceOutStatus
from .licence_out_terms import LicenceOutTerms
from .licence_request_body import LicenceRequestBody
from .licence_signature_out import LicenceSignatureOut
from .licence_signature_out_decision import LicenceSignatureOutDecision
from .licence_signature_out_role import LicenceSignatureOutRole
from .licences_ended import LicencesEnded
from .list_all_licences_status_type_0 import ListAllLicencesStatusType0
from .paper_licence import PaperLicence
from .person_body import PersonBody
from .person_out import PersonOut
from .person_out_signing_keys import PersonOutSigningKeys
from .pose_ref import PoseRef
from .pose_ref_preset_type_0 import PoseRefPresetType0
from .prefetch_body import PrefetchBody
from .prefetch_response import PrefetchResponse
from .prefetch_response_results import PrefetchResponseResults
from .preset import Preset
from .preset_body import PresetBody
from .preset_list import PresetList
from .preset_list_presets import PresetListPresets
from .register_response import RegisterResponse
from .register_twin_json_register_by_key_body import RegisterTwinJsonRegisterByKeyBody
from .signed_licence import SignedLicence
from .signing_key_body import SigningKeyBody
from .statement_row import StatementRow
from .talent_statement import TalentStatement
from .talent_statement_amounts import TalentStatementAmounts
from .tenant import Tenant
from .tenant_answer import TenantAnswer
from .tenant_create_body import TenantCreateBody
from .tenant_delivery_body import TenantDeliveryBody
from .tenant_disable_body import TenantDisableBody
from .tenant_list import TenantList
from .tenant_twin import TenantTwin
from .tenant_twin_list import TenantTwinList
from .timings import Timings
from .twin_id_body import TwinIdBody
from .twin_licences_body import TwinLicencesBody
from .twin_list_response import TwinListResponse
from .twin_list_response_cache import TwinListResponseCache
from .twin_person_body import TwinPersonBody
from .twin_revoke_body import TwinRevokeBody
from .twin_revoke_response import TwinRevokeResponse
from .twin_state import TwinState
from .usage_report import UsageReport
from .usage_report_counted import UsageReportCounted
from .usage_row import UsageRow
from .verify_audit import VerifyAudit
from .verify_image_files_body import VerifyImageFilesBody
from .verify_response import VerifyResponse
from .verify_response_found_by_type_0 import VerifyResponseFoundByType0
from .verify_response_training_mining_type_0 import VerifyResponseTrainingMiningType0
from .watermark_report import WatermarkReport
from .webhook_delivery import WebhookDelivery
from .webhook_delivery_answer import WebhookDeliveryAnswer
from .webhook_delivery_list import WebhookDeliveryList
from .webhook_delivery_log_item import WebhookDeliveryLogItem
from .webhook_delivery_payload import WebhookDeliveryPayload

__all__ = (
    "AddAssetFilesBody",
    "AddAssetFilesBodyKind",
    "AddAssetJsonBody",
    "AddAssetJsonBodyKind",
    "ApiKey",
    "AssetOut",
    "AssetOutKind",
    "AuditRecords",
    "AuditRecordsRecordsItem",
    "BodyRegisterTwin",
    "C2PaReport",
    "ConsentAnswer",
    "ConsentBody",
    "ConsentHistory",
    "ConsentRecordOut",
    "ConsentTerms",
    "ConsentTermsState",
    "DeliveryAnswer",
    "DeliveryIdBody",
    "DeliverySettings",
    "DetectImageFilesBody",
    "DetectResponse",
    "DetectResponseTrainingMiningType0",
    "EditRequest",
    "EditRequestOutputFormat",
    "EditSource",
    "ErrorBody",
    "ErrorDetail",
    "EvictResponse",
    "GarmentRef",
    "GarmentRefCategory",
    "GenerateRequest",
    "GenerateRequestOutputFormat",
    "GenerateResponse",
    "GetBrandStatementFormat",
    "GetTalentStatementFormat",
    "GetTalentUsageFormat",
    "GetTalentUsagePeriod",
    "GetUsageFormat",
    "GetUsagePeriod",
    "ImageOut",
    "ImageOutFormat",
    "ItemDeliveryState",
    "ItemRedeliverAnswer",
    "ItemRedeliverBody",
    "JobAccepted",
    "JobDecision",
    "JobDecisionOutput",
    "JobImage",
    "JobImageFormat",
    "JobItemResult",
    "JobItemResultMetadataType0",
    "JobItemSpec",
    "JobItemSpecMetadata",
    "JobItemSpecOutputFormat",
    "JobItemSpecSizeType0",
    "JobList",
    "JobPage",
    "JobPageOutput",
    "JobRejectBody",
    "JobRejectBodyReasons",
    "JobReviewBody",
    "JobSubmitBody",
    "JobSummary",
    "JobSummaryOutput",
    "KeyCreateBody",
    "KeyCreateBodyScopesItem",
    "KeyCreated",
    "KeyIdBody",
    "KeyList",
    "KeyRevoked",
    "LicenceDecisionBody",
    "LicenceDecisionBodyDecision",
    "LicenceDocument",
    "LicenceDocumentLicence",
    "LicenceIdBody",
    "LicenceList",
    "LicenceOut",
    "LicenceOutStatus",
    "LicenceOutTerms",
    "LicenceRequestBody",
    "LicenceSignatureOut",
    "LicenceSignatureOutDecision",
    "LicenceSignatureOutRole",
    "LicencesEnded",
    "ListAllLicencesStatusType0",
    "PaperLicence",
    "PersonBody",
    "PersonOut",
    "PersonOutSigningKeys",
    "PoseRef",
    "PoseRefPresetType0",
    "PrefetchBody",
    "PrefetchResponse",
    "PrefetchResponseResults",
    "Preset",
    "PresetBody",
    "PresetList",
    "PresetListPresets",
    "RegisterResponse",
    "RegisterTwinJsonRegisterByKeyBody",
    "SignedLicence",
    "SigningKeyBody",
    "StatementRow",
    "TalentStatement",
    "TalentStatementAmounts",
    "Tenant",
    "TenantAnswer",
    "TenantCreateBody",
    "TenantDeliveryBody",
    "TenantDisableBody",
    "TenantList",
    "TenantTwin",
    "TenantTwinList",
    "Timings",
    "TwinIdBody",
    "TwinLicencesBody",
    "TwinListResponse",
    "TwinListResponseCache",
    "TwinPersonBody",
    "TwinRevokeBody",
    "TwinRevokeResponse",
    "TwinState",
    "UsageReport",
    "UsageReportCounted",
    "UsageRow",
    "VerifyAudit",
    "VerifyImageFilesBody",
    "VerifyResponse",
    "VerifyResponseFoundByType0",
    "VerifyResponseTrainingMiningType0",
    "WatermarkReport",
    "WebhookDelivery",
    "WebhookDeliveryAnswer",
    "WebhookDeliveryList",
    "WebhookDeliveryLogItem",
    "WebhookDeliveryPayload",
)
