"""Label-Agnostic Forgetting: A Supervision-Free Unlearning in Deep Models (Shen et al., ICLR 2024)."""
