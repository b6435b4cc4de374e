"""The local model proxy: agents → Databricks serving endpoints / AI Gateway, credential injected."""
