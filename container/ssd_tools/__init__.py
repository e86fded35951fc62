"""ssd_tools: what only the build host or a developer runs (export, int8 quantization, the demo model, AWS tooling)."""
