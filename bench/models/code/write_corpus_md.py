"""Write CORPUS.md from fetch_corpus.py's package table and prepare.py's token counts."""
import json, os

HERE = os.path.dirname(os.path.abspath(__file__))
WORK = os.path.join(HERE, '..', '.work')
rows = json.load(open(os.path.join(WORK, 'packages_table.json')))
meta = json.load(open(os.path.join(HERE, '..', '.carry', 'code', 'meta.json')))
tok = {d['name']: d['tokens'] for s in ('train', 'heldout') for d in meta[s]['docs']}
used = [r for r in rows if r['status'] in ('train', 'held out')]
held = [r for r in used if r['status'] == 'held out']
out = ['# Code model corpus', '',
       'Source: the npm registry, `npm pack NAME` (the latest version on 2026-11-26) for each name in',
       '`packages.txt`; built by `fetch_corpus.py` (download, licence check, file selection), tokenized by',
       '`prepare.py`. The corpus itself is not committed (it is rebuilt by those two scripts).', '',
       '## What is kept', '',
       '- Packages whose package.json licence is MIT, ISC, BSD-2/3-Clause, 0BSD or Apache-2.0 (an SPDX `OR`',
       '  counts if one alternative is among these; `AND` needs all). BlueOak, Unlicense, CC-BY, MIT AND Zlib',
       '  and public-domain packages were skipped (table below).',
       '- Files ending .js .mjs .cjs .ts .mts .cts .d.ts; no `.min.` files, nothing under node_modules/,',
       '  nothing over 200 KB, nothing that looks minified (a line over 2000 characters or an average over 200).',
       '- If a package ships `src/`, its build folders (dist, build, esm, cjs, umd, ...) are dropped. Copies of',
       '  one module in several formats (dist/cjs/x.js, dist/esm/x.mjs, x.ts) are reduced to one (TS source',
       '  first, then ESM, then CJS); byte-identical files are dropped.',
       '- Each package is one document: its files in path order, each preceded by a `// path: <file>` line,',
       '  capped at 1.5 MB so a few huge packages do not dominate. In the token stream every document is',
       '  `[BOS] ... [EOS]`; training takes random 4096-token windows across that stream.', '',
       '## Size', '',
       '| split | packages | bytes | tokens (incl. BOS/EOS) | bytes/token |', '|---|---|---|---|---|',
       f"| train | {len(meta['train']['docs'])} | {meta['train']['bytes']:,} | {meta['train']['tokens']:,} | "
       f"{meta['train']['bytes'] / meta['train']['tokens']:.2f} |",
       f"| held out | {len(meta['heldout']['docs'])} | {meta['heldout']['bytes']:,} | {meta['heldout']['tokens']:,} | "
       f"{meta['heldout']['bytes'] / meta['heldout']['tokens']:.2f} |", '',
       f"Tokenizer: SentencePiece BPE, {meta['vocab_size']} pieces (`tokenizer.model`), trained on 600,000",
       'random non-empty lines of the training split: byte fallback, split digits, identity normalization,',
       'whitespace kept (runs of spaces may form pieces), no dummy prefix; ids 0/1/2 = unk/BOS/EOS.', '',
       '## Held-out packages (evaluation only, never trained on)', '',
       '| package | version | licence | bytes | tokens |', '|---|---|---|---|---|']
out += [f"| {r['name']} | {r['version']} | {r['license']} | {r['bytes']:,} | {tok[r['name']]:,} |" for r in held]
out += ['', 'The perplexity text of `reference.json` is the first 2048 tokens of semver; the greedy prompt is the',
        'first 160 tokens of p-limit.', '', '## Training packages', '',
        '| package | version | licence | files | bytes | tokens |', '|---|---|---|---|---|---|']
out += [f"| {r['name']} | {r['version']} | {r['license']} | {r['files']} | {r['bytes']:,} | {tok[r['name']]:,} |"
        for r in used if r['status'] == 'train']
out += ['', '## Skipped', '', '| package | version | licence | why |', '|---|---|---|---|']
out += [f"| {r['name']} | {r.get('version', '')} | {r.get('license', '')} | {r['status']} |"
        for r in rows if r['status'] not in ('train', 'held out')]
open(os.path.join(HERE, 'CORPUS.md'), 'w').write('\n'.join(out) + '\n')
