"""RePRI (Boudiaf et al., CVPR 2021; arXiv 2012.06166): few-shot segmentation by transductive inference."""
