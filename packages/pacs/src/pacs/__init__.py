"""PACS (arXiv 2509.02522): RLVR as supervised learning, against GRPO, on verifiable arithmetic."""
