"""EMO (Ren, Wu, Zhu; ICLR 2024, arXiv 2310.04691): what is specific to this paper.

``emo.loss``: the EMO training loss; ``emo.source``: the synonym-cluster Markov source (the model is
``xentlab.models.small_decoder``); ``emo.experiment``: pretrain / fine-tune / evaluate; ``emo.full``: GPT-2 at full scale.
"""
