"""The toy model of the hand-computed cost and Kinetics tests: H=4, Hkv=2, d=8, nL=2, so H*d*nL = 64,
Hkv*d*nL = 32 and bf16 KV bytes per token = 2*2*32 = 128."""
from simulator.models import ModelSpec

TOY = ModelSpec(name="toy", model_type="llama", num_layers=2, hidden_size=32, num_heads=4, num_kv_heads=2,
                head_dim=8, intermediate_size=64, vocab_size=100, tie_word_embeddings=False, gated_mlp=True,
                has_bias=False, max_position_embeddings=4096)
