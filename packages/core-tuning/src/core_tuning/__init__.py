"""Core-tuning (Zhang, Hooi, Hu, Liang, Feng; NeurIPS 2021; arXiv 2102.06605): fine-tune a contrastive
self-supervised model with soft-label cross-entropy plus eta * focal SupCon over the original features and two
sets of feature mixes (hard negatives, hard positives). Modules: ``focal_supcon`` (the contrastive regulariser),
``mixup`` (the 3B features and their soft labels), ``model`` (backbone + bias-free classifier + contrastor),
``pretrain`` (SimCLR pre-training, cached), ``experiment`` (one fine-tuning arm at one seed)."""
