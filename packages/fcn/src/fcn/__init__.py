"""FCN: Fusing Exponential and Linear Cross Network for Click-Through Rate Prediction: what is specific to this paper (everything shared lives in xentlab)."""
