"""The gateway's route modules, one per capability. Each turns HTTP into one capability call and back."""
