"""The rate–distortion-trained latent codec: ``model`` (a latent pyramid seen through a disparity
warp, a small synthesis network), ``entropy_model`` (checkerboard-context ARM and its integer
twin), ``disparity`` (the encoder's plane sweep), ``fit`` (training on MSE + λ·rate), ``payload``
(range coding with constriction, and the decoder's way back), ``report`` and ``commands``."""
