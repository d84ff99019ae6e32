"""TraCoCo: translation-consistent co-training for semi-supervised 3D segmentation."""
