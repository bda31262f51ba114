"""Train the code model's SentencePiece tokenizer and tokenize the corpus (runs on CPU, here).

Reads .work/{train,heldout}_docs.json (from fetch_corpus.py build), writes
  code/tokenizer.model                  SentencePiece BPE, 8192 pieces
  .carry/code/{train,heldout}.u16.xz    token streams, each package as [BOS] tokens [EOS]
  .carry/code/meta.json                 document names and offsets, counts for CORPUS.md
usage: python3 prepare.py [vocab_size]
"""
import json, lzma, os, random, sys, time

import numpy as np
import sentencepiece as spm

HERE = os.path.dirname(os.path.abspath(__file__))
WORK = os.path.join(HERE, '..', '.work')
CARRY = os.path.join(HERE, '..', '.carry', 'code')


def main():
    vocab = int(sys.argv[1]) if len(sys.argv) > 1 else 8192
    os.makedirs(CARRY, exist_ok=True)
    train = json.load(open(os.path.join(WORK, 'train_docs.json')))
    held = json.load(open(os.path.join(WORK, 'heldout_docs.json')))
    # held-out order: the first document supplies the perplexity text, the second the greedy prompt
    order = ['semver', 'p-limit']
    held.sort(key=lambda d: (order.index(d['name']) if d['name'] in order else 99, d['name']))

    lines = [l for d in train for l in d['text'].split('\n') if l.strip()]
    random.Random(0).shuffle(lines)
    lines = lines[:600_000]
    txt = os.path.join(WORK, 'spm_input.txt')
    with open(txt, 'w') as f:
        f.write('\n'.join(lines) + '\n')
    t0 = time.time()
    spm.SentencePieceTrainer.train(
        input=txt, model_prefix=os.path.join(HERE, 'tokenizer'), model_type='bpe', vocab_size=vocab,
        byte_fallback=True, split_digits=True,
        # code: keep whitespace exactly (no NFKC, no collapsing of runs, no leading space)
        normalization_rule_name='identity', remove_extra_whitespaces=False, add_dummy_prefix=False,
        allow_whitespace_only_pieces=True, character_coverage=0.9995, max_sentence_length=8192,
        unk_id=0, bos_id=1, eos_id=2, pad_id=-1, num_threads=os.cpu_count(), minloglevel=2)
    print(f'tokenizer trained in {time.time() - t0:.0f}s')
    os.remove(os.path.join(HERE, 'tokenizer.vocab'))
    sp = spm.SentencePieceProcessor(model_file=os.path.join(HERE, 'tokenizer.model'))

    meta = {'vocab_size': sp.get_piece_size()}
    for split, docs in (('train', train), ('heldout', held)):
        t0 = time.time()
        ids = sp.encode([d['text'] for d in docs])
        stream, offsets = [], []
        for d, t in zip(docs, ids):
            offsets.append({'name': d['name'], 'version': d['version'], 'start': len(stream), 'tokens': len(t),
                            'bytes': len(d['text'].encode())})
            stream += [sp.bos_id()] + t + [sp.eos_id()]
        arr = np.array(stream, dtype=np.uint16)
        with lzma.open(os.path.join(CARRY, f'{split}.u16.xz'), 'wb', preset=6) as f:
            f.write(arr.tobytes())
        meta[split] = {'docs': offsets, 'tokens': len(stream), 'bytes': sum(o['bytes'] for o in offsets)}
        print(f'{split}: {len(docs)} docs, {meta[split]["bytes"]} bytes, {len(stream)} tokens '
              f'({meta[split]["bytes"] / len(stream):.2f} bytes/token), {time.time() - t0:.0f}s')
    json.dump(meta, open(os.path.join(CARRY, 'meta.json'), 'w'), indent=1)


if __name__ == '__main__':
    main()
