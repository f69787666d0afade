"""Tuning the local model (InstructRec): instruction data, LoRA training and export, BinLLM codes."""
