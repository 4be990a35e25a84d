"""Long videos: shot detection and shot players (:mod:`~vqa_shap.long_video.shots`), the TransNet V2
detector and network (:mod:`~vqa_shap.long_video.transnet`, :mod:`~vqa_shap.long_video.transnet_net`) and the
Adaptive Keyframe Sampling frame sampler (:mod:`~vqa_shap.long_video.aks`).
"""
