"""Twin adapters: records, where adapter files live, and how one is put on the pipeline."""
