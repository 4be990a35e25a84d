"""Models rebuilt from transformers parts (FrozenBiLM, InternVideo, the LongVA/VideoLLaMA2 causal LM)
and the conversion of their original checkpoints.
"""
