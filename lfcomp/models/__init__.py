"""Scene models, nerfstudio's split: ``camera`` (rays of any view), ``sampler`` (depths along a ray),
``renderer`` (volume rendering), ``mlp`` (the trunk every field shares), one module per model kind
(``nerf``, ``nelf``: its field and how it renders a ray batch), ``registry`` (the kinds) and
``scene`` (``SceneModel``: camera + a kind's field, rebuilt from a JSON spec). Import from the
modules; ``registry`` needs no torch."""
