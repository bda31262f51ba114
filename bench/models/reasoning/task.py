"""Arithmetic-chain task for the reasoning model (format is fixed; see TASK.md).

    Problem: Start with 17. Add 25. Multiply by 3. Subtract 40.
    Solution:
    17 + 25 = 42
    42 * 3 = 126
    126 - 40 = 86
    Answer: 86

usage: python3 task.py examples > examples.json      # the fixture for the TypeScript side
       python3 task.py sample [N] [SEED] [ERROR_RATE] # print N training texts
"""
import json, random, sys

PROMPT_END = 'Solution:\n'


def make_problem(rng, min_ops=3, max_ops=6):
    start = rng.randint(1, 99)
    ops = []
    for _ in range(rng.randint(min_ops, max_ops)):
        kind = rng.choice('+-*')
        operand = rng.randint(2, 9) if kind == '*' else rng.randint(1, 99)
        ops.append({'op': kind, 'operand': operand})
    return start, ops


def problem_line(start, ops):
    words = {'+': 'Add {}.', '-': 'Subtract {}.', '*': 'Multiply by {}.'}
    return ' '.join([f'Problem: Start with {start}.'] + [words[o['op']].format(o['operand']) for o in ops])


def apply(value, op, operand):
    return value + operand if op == '+' else value - operand if op == '-' else value * operand


def corrupt(rng, value):
    """A plausible wrong result: off by a little, a dropped carry/borrow, or two digits swapped."""
    digits = str(abs(value))
    sign = -1 if value < 0 else 1
    for _ in range(20):
        kind = rng.random()
        if kind < 0.4:
            wrong = value + rng.choice([-1, 1]) * rng.randint(1, 10)
        elif kind < 0.75 and len(digits) >= 2:
            # a carry or borrow lost at one decimal place: magnitude off by 10^k
            k = rng.randint(1, len(digits) - 1)
            wrong = sign * (abs(value) + rng.choice([-1, 1]) * 10 ** k)
        elif len(digits) >= 2:
            i = rng.randint(0, len(digits) - 2)
            d = list(digits)
            d[i], d[i + 1] = d[i + 1], d[i]
            wrong = sign * int(''.join(d))
        else:
            continue
        if wrong != value:
            return wrong
    return value + 1


def solve(start, ops, rng=None, error_rate=0.0):
    """Step lines and answer. With probability error_rate one step's result is wrong and the
    remaining steps continue correctly from the wrong value (so the answer follows it)."""
    bad_step = -1
    if rng is not None and rng.random() < error_rate:
        bad_step = rng.randrange(len(ops))
    steps, value = [], start
    for i, o in enumerate(ops):
        result = apply(value, o['op'], o['operand'])
        if i == bad_step:
            result = corrupt(rng, result)
        steps.append(f"{value} {o['op']} {o['operand']} = {result}")
        value = result
    return steps, value, bad_step


def render(start, ops, steps, answer):
    return problem_line(start, ops) + '\n' + PROMPT_END + '\n'.join(steps) + f'\nAnswer: {answer}\n'


def training_text(rng, error_rate=0.2):
    start, ops = make_problem(rng)
    steps, answer, _ = solve(start, ops, rng, error_rate)
    return render(start, ops, steps, answer)


def check(text):
    """Parse a full problem+solution text; return (answer_correct, first_wrong_step or None)."""
    head, _, body = text.partition(PROMPT_END)
    parts = head.strip().split('. ')
    start = int(parts[0].split('Start with ')[1].rstrip('.'))
    ops = []
    for p in parts[1:]:
        p = p.rstrip('.')
        if p.startswith('Add '):
            ops.append(('+', int(p[4:])))
        elif p.startswith('Subtract '):
            ops.append(('-', int(p[9:])))
        else:
            ops.append(('*', int(p[len('Multiply by '):])))
    value = start
    for o, n in ops:
        value = apply(value, o, n)
    lines = body.split('\n')
    truth = start
    first_bad = None
    for i, (o, n) in enumerate(ops):
        want = f'{truth} {o} {n} = {apply(truth, o, n)}'
        if i >= len(lines) or lines[i] != want:
            first_bad = i
            break
        truth = apply(truth, o, n)
    answer_ok = len(lines) > len(ops) and lines[len(ops)] == f'Answer: {value}'
    return answer_ok, first_bad


def examples():
    rng = random.Random(20261126)
    out = [{'problem': 'Problem: Start with 17. Add 25. Multiply by 3. Subtract 40.', 'start': 17,
            'ops': [{'op': '+', 'operand': 25}, {'op': '*', 'operand': 3}, {'op': '-', 'operand': 40}]}]
    while len(out) < 5:
        start, ops = make_problem(rng)
        steps, answer, _ = solve(start, ops)
        # make sure the fixture shows negative values too
        if len(out) == 4 and not any('-' in s.split('= ')[1] or s.startswith('-') for s in steps):
            continue
        out.append({'problem': problem_line(start, ops), 'start': start, 'ops': ops})
    for e in out:
        steps, answer, _ = solve(e['start'], e['ops'])
        e['steps'], e['answer'] = steps, answer
        e['prompt'] = e['problem'] + '\n' + PROMPT_END
        e['text'] = render(e['start'], e['ops'], steps, answer)
    return out


if __name__ == '__main__':
    if sys.argv[1] == 'examples':
        print(json.dumps(examples(), indent=2))
    elif sys.argv[1] == 'sample':
        n = int(sys.argv[2]) if len(sys.argv) > 2 else 5
        rng = random.Random(int(sys.argv[3]) if len(sys.argv) > 3 else 0)
        rate = float(sys.argv[4]) if len(sys.argv) > 4 else 0.2
        for _ in range(n):
            print(training_text(rng, rate))
