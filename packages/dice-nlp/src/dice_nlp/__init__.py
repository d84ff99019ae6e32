"""Li et al., "Dice Loss for Data-imbalanced NLP Tasks" (ACL 2020): the self-adjusting dice loss (DSC) and its
baselines (losses), the CPU-scale tagger (tagger) and the CoNLL03 BERT path for --scale full (full)."""
