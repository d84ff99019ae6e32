"""G-SimCLR (Chakraborty, Gosthipaty, Paul; ICDM workshops 2020; arXiv 2009.12007): SimCLR whose batches are
built from pseudo labels (KMeans on denoising-autoencoder embeddings) so that a batch holds about one image per
cluster, i.e. fewer same-class "negatives". Modules: ``batching`` (rank-sorted fixed batches), ``autoencoder``
(the DAE and the KMeans pseudo labels), ``model`` (backbone + projection head with the P1/P2/P3 cut points),
``experiment`` (one arm at one seed). NT-Xent and the two-view augmentation live in the core library
(``xentlab.losses.ntxent``, ``xentlab.data.augment``)."""
