# A random-weight Llama GGUF of real attention shape (head size 128, grouped-query attention) but few layers and the
# embedded model's 512-token vocabulary, so that CPU benchmarks of long contexts finish on a small machine.
# Weights are N(0, 0.02) F16: right for speed figures and for comparing attention paths on the same model, meaningless
# as a language model.
#   python3 bench/squeezed-attention/make-random-model.py OUT.gguf [--layers 2] [--embd 1024] [--heads 8] [--heads-kv 2] [--ff 2816]
import argparse
import os
import sys

import numpy as np

root = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(root, "node_modules", "node-llama-cpp", "llama", "llama.cpp", "gguf-py"))
from gguf import GGUFReader, GGUFWriter  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("out")
parser.add_argument("--layers", type=int, default=2)
parser.add_argument("--embd", type=int, default=1024)
parser.add_argument("--heads", type=int, default=8)
parser.add_argument("--heads-kv", type=int, default=2)
parser.add_argument("--ff", type=int, default=2816)
parser.add_argument("--context", type=int, default=131072)
parser.add_argument("--seed", type=int, default=0)
args = parser.parse_args()

head_dim = args.embd // args.heads
vocab = GGUFReader(os.path.join(root, "test", "fixtures", "models", "stories260K.gguf"))
field = lambda key: vocab.fields[key].contents()

w = GGUFWriter(args.out, "llama")
w.add_name(f"random-llama-{args.layers}x{args.embd}-h{args.heads}-kv{args.heads_kv}-d{head_dim}")
w.add_block_count(args.layers)
w.add_context_length(args.context)
w.add_embedding_length(args.embd)
w.add_feed_forward_length(args.ff)
w.add_head_count(args.heads)
w.add_head_count_kv(args.heads_kv)
w.add_layer_norm_rms_eps(1e-5)
w.add_rope_dimension_count(head_dim)
w.add_rope_freq_base(500000.0)
tokens = field("tokenizer.ggml.tokens")
w.add_vocab_size(len(tokens))
w.add_file_type(1)
w.add_tokenizer_model(field("tokenizer.ggml.model"))
w.add_token_list(tokens)
w.add_token_scores(field("tokenizer.ggml.scores"))
w.add_token_types(field("tokenizer.ggml.token_type"))
w.add_bos_token_id(field("tokenizer.ggml.bos_token_id"))
w.add_eos_token_id(field("tokenizer.ggml.eos_token_id"))
w.add_unk_token_id(field("tokenizer.ggml.unknown_token_id"))

rng = np.random.default_rng(args.seed)


def tensor(name, *shape):
    w.add_tensor(name, (rng.standard_normal(shape, dtype=np.float32) * 0.02).astype(np.float16))


kv = args.heads_kv * head_dim
tensor("token_embd.weight", len(tokens), args.embd)
w.add_tensor("output_norm.weight", np.ones(args.embd, dtype=np.float32))
tensor("output.weight", len(tokens), args.embd)
for i in range(args.layers):
    w.add_tensor(f"blk.{i}.attn_norm.weight", np.ones(args.embd, dtype=np.float32))
    tensor(f"blk.{i}.attn_q.weight", args.embd, args.embd)
    tensor(f"blk.{i}.attn_k.weight", kv, args.embd)
    tensor(f"blk.{i}.attn_v.weight", kv, args.embd)
    tensor(f"blk.{i}.attn_output.weight", args.embd, args.embd)
    w.add_tensor(f"blk.{i}.ffn_norm.weight", np.ones(args.embd, dtype=np.float32))
    tensor(f"blk.{i}.ffn_gate.weight", args.ff, args.embd)
    tensor(f"blk.{i}.ffn_up.weight", args.ff, args.embd)
    tensor(f"blk.{i}.ffn_down.weight", args.embd, args.ff)
w.write_header_to_file()
w.write_kv_data_to_file()
w.write_tensors_to_file()
w.close()
print(f"wrote {args.out}: {args.layers} layers, {args.heads} heads / {args.heads_kv} KV heads of {head_dim}, vocab {len(tokens)}")
