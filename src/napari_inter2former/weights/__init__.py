"""Shipped weight files (fp16 safetensors), their weights.json and NOTICE; no code."""
