"""Label Supervised LLaMA Finetuning: what is specific to this paper (everything shared lives in xentlab)."""
