"""rnnkit.inference: using a trained model: evaluate, score, rescore n-best lists, generate."""
