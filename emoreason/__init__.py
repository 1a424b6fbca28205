"""emoreason: multimodal-LLM emotion reasoning.

The core package holds what every stage shares: the sample schema, configs, media decoding,
face detection, frozen encoders and the feature cache. `emoreason.data_prep`, `emoreason.train`
and `emoreason.eval` (the top-level folders of the same names) import it; it imports none of them.
"""

__version__ = "0.1.0"
