"""The Transformer: configuration, attention, position variants, KV cache, FLOPs accounting."""
