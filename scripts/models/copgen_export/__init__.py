"""copgen_export: exports COP-GEN-Beta's networks to TorchScript for copgen.

scripts/models/export_models.py is its command line. The modules, from the bottom up:

    common       modalities, latent scale, network dimensions, ExportError
    autoencoder  the KL-f8 autoencoder (Encoder, Decoder, Autoencoder)
    backbone     the U-ViT diffusion backbone (attention, Block, SkipBlock, Backbone)
    extractors   the metric feature extractors (FID Inception-v3, VGG16, TF1 resize)
    checkpoints  loading checkpoints, dimensions from state dicts, strict loads
    export       building the networks, writing the models directory, fixtures, run()
    cli          argument parsing and main()
"""
