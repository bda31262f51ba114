"""Train the reasoning model's small SentencePiece vocabulary on generated problems (CPU, here).

BPE with byte fallback (the newline becomes <0x0A>, as in the code model), digits always split,
whitespace kept as is and no dummy prefix, so "Solution:\n" ends on a token boundary.
usage: python3 make_tokenizer.py [vocab_size]   -> reasoning/tokenizer.model
"""
import os, random, sys

import sentencepiece as spm

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import task  # noqa: E402


def main():
    vocab = int(sys.argv[1]) if len(sys.argv) > 1 else 320
    rng = random.Random(7)
    lines = []
    for _ in range(20000):
        lines += [l for l in task.training_text(rng).split('\n') if l]
    txt = os.path.join(HERE, '..', '.work', 'reasoning_spm_input.txt')
    os.makedirs(os.path.dirname(txt), exist_ok=True)
    open(txt, 'w').write('\n'.join(lines) + '\n')
    spm.SentencePieceTrainer.train(
        input=txt, model_prefix=os.path.join(HERE, 'tokenizer'), model_type='bpe', vocab_size=vocab,
        byte_fallback=True, split_digits=True, normalization_rule_name='identity',
        remove_extra_whitespaces=False, add_dummy_prefix=False, character_coverage=1.0,
        unk_id=0, bos_id=1, eos_id=2, pad_id=-1, minloglevel=2)
    os.remove(os.path.join(HERE, 'tokenizer.vocab'))
    sp = spm.SentencePieceProcessor(model_file=os.path.join(HERE, 'tokenizer.model'))
    ex = task.render(17, [{'op': '+', 'operand': 25}, {'op': '*', 'operand': 3}, {'op': '-', 'operand': -40 * -1}],
                     *task.solve(17, [{'op': '+', 'operand': 25}, {'op': '*', 'operand': 3}, {'op': '-', 'operand': 40}])[:2])
    print(sp.get_piece_size(), sp.encode(ex, out_type=str))


if __name__ == '__main__':
    main()
