"""Build the code model's corpus from npm packages.

Step 1 (download): `npm pack` each name in packages.txt (latest version) into .work/tarballs.
Step 2 (build): read every tarball without unpacking it, keep permissively licensed packages,
select their JS/TS sources and write one document per package: the files in path order, each
preceded by a `// path: <file>` header, so later files can refer to earlier ones the way they
would in an editor workspace. Held-out packages go to a separate file.

usage: python3 fetch_corpus.py download|build
"""
import hashlib, io, json, os, re, subprocess, sys, tarfile
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
WORK = os.path.join(HERE, '..', '.work')
TARBALLS = os.path.join(WORK, 'tarballs')

# Chosen before looking at any model output: well-known, mid-sized, varied in style (JS, TS, ESM, CJS).
HELD_OUT = ['p-limit', 'dotenv', 'semver', 'mitt', 'dequal', 'cookie', 'ms', 'kleur', 'ini', 'path-to-regexp']

PERMISSIVE = {'MIT', 'ISC', 'BSD-2-Clause', 'BSD-3-Clause', 'BSD', '0BSD', 'Apache-2.0', 'Apache 2.0', 'MIT-0'}
EXTS = ('.d.ts', '.ts', '.mts', '.cts', '.js', '.mjs', '.cjs')
# Build-output folders; dropped when the package also ships its sources under src/.
BUILD_DIRS = {'dist', 'build', 'umd', 'bundles', 'bundle', 'cjs', 'esm', 'es', 'es5', 'es6', 'es2015', 'es2017', 'lib-es', 'out', 'types'}
# Folder names that only say which module format a copy is in; two files differing only in these are duplicates.
FORMAT_DIRS = {'cjs', 'esm', 'es', 'es5', 'es6', 'es2015', 'es2017', 'es2020', 'umd', 'module', 'modules', 'commonjs', 'node', 'browser', 'mjs', 'dist', 'build', 'lib', 'types', 'legacy', 'modern'}
MAX_FILE = 200_000        # bigger files are bundles or generated tables
MAX_PACKAGE = 1_500_000   # keeps a few huge packages (three, typescript) from dominating


def names():
    out = []
    for line in open(os.path.join(HERE, 'packages.txt')):
        line = line.strip()
        if line and not line.startswith('#') and line not in out:
            out.append(line)
    return out


def download():
    os.makedirs(TARBALLS, exist_ok=True)

    def pack(name):
        r = subprocess.run(['npm', 'pack', name, '--json', '--pack-destination', TARBALLS],
                           capture_output=True, text=True, timeout=180)
        if r.returncode != 0:
            return name, None
        try:
            info = json.loads(r.stdout)[0]
        except (ValueError, IndexError):
            return name, None
        return name, {'id': info['id'], 'filename': info['filename']}

    with ThreadPoolExecutor(8) as ex:
        got = dict(ex.map(pack, names()))
    json.dump(got, open(os.path.join(WORK, 'downloaded.json'), 'w'), indent=1)
    print('downloaded', sum(1 for v in got.values() if v), 'of', len(got))


def licence_of(pkg):
    lic = pkg.get('license') or pkg.get('licenses')
    if isinstance(lic, dict):
        lic = lic.get('type')
    if isinstance(lic, list):
        lic = ' OR '.join(str(x.get('type') if isinstance(x, dict) else x) for x in lic)
    return str(lic) if lic else ''


def permissive(lic):
    # SPDX expression: "(MIT OR Apache-2.0)" is fine if one alternative is; with AND every part must be.
    lic = lic.strip().strip('()')
    if ' AND ' in lic:
        return all(permissive(p) for p in lic.split(' AND '))
    return any(p.strip().strip('()') in PERMISSIVE for p in lic.split(' OR '))


def minified(text):
    lines = text.split('\n')
    if max(len(l) for l in lines) > 2000:
        return True
    return len(text) / max(1, len(lines)) > 200


def dedupe_key(path):
    stem = path
    for ext in EXTS:
        if stem.endswith(ext):
            kind = 'decl' if ext == '.d.ts' else 'code'
            stem = stem[: -len(ext)]
            break
    parts = [p for p in stem.split('/') if p not in FORMAT_DIRS]
    return kind, '/'.join(parts)


def ext_rank(path):
    # Prefer the TypeScript source, then ESM, then CommonJS when several copies of one module exist.
    for i, ext in enumerate(('.ts', '.mts', '.mjs', '.js', '.cjs')):
        if path.endswith(ext) and not path.endswith('.d.ts'):
            return i
    return 0


def package_files(tf):
    files = {}
    for m in tf.getmembers():
        if not m.isfile():
            continue
        path = m.name.split('/', 1)[1] if '/' in m.name else m.name
        low = path.lower()
        if not low.endswith(EXTS) or '.min.' in low or 'node_modules/' in low or m.size > MAX_FILE or m.size == 0:
            continue
        data = tf.extractfile(m).read()
        try:
            text = data.decode('utf-8')
        except UnicodeDecodeError:
            continue
        if minified(text):
            continue
        files[path] = text.replace('\r\n', '\n')
    has_src = any(p.startswith('src/') and not p.endswith('.d.ts') for p in files)
    if has_src:
        files = {p: t for p, t in files.items() if p.split('/')[0] not in BUILD_DIRS}
    best = {}
    for p in sorted(files, key=lambda p: (ext_rank(p), p.count('/'), p)):
        k = dedupe_key(p)
        if k not in best:
            best[k] = p
    keep = sorted(best.values())
    seen, out = set(), []
    for p in keep:
        h = hashlib.sha1(files[p].encode()).digest()
        if h in seen:
            continue
        seen.add(h)
        out.append((p, files[p]))
    return out


def build():
    got = json.load(open(os.path.join(WORK, 'downloaded.json')))
    rows, train_docs, held_docs = [], [], []
    for name in names():
        info = got.get(name)
        if not info:
            rows.append({'name': name, 'status': 'not found on npm'})
            continue
        tf = tarfile.open(os.path.join(TARBALLS, info['filename']))
        pj = None
        for m in tf.getmembers():
            if m.name.count('/') == 1 and m.name.endswith('/package.json'):
                pj = json.load(tf.extractfile(m))
                break
        if pj is None:
            rows.append({'name': name, 'status': 'no package.json'})
            continue
        lic = licence_of(pj)
        version = pj.get('version', '?')
        if not permissive(lic):
            rows.append({'name': name, 'version': version, 'license': lic, 'status': 'skipped: licence'})
            continue
        files, size, doc = package_files(tf), 0, []
        for path, text in files:
            if size + len(text) > MAX_PACKAGE:
                break
            part = f'// path: {path}\n{text}' + ('' if text.endswith('\n') else '\n')
            doc.append(part)
            size += len(part)
        if not doc:
            rows.append({'name': name, 'version': version, 'license': lic, 'status': 'skipped: no sources'})
            continue
        text = '\n'.join(doc)
        held = name in HELD_OUT
        (held_docs if held else train_docs).append({'name': name, 'version': version, 'text': text})
        rows.append({'name': name, 'version': version, 'license': lic, 'files': len(doc),
                     'bytes': len(text.encode()), 'status': 'held out' if held else 'train'})
    json.dump(train_docs, open(os.path.join(WORK, 'train_docs.json'), 'w'))
    json.dump(held_docs, open(os.path.join(WORK, 'heldout_docs.json'), 'w'))
    json.dump(rows, open(os.path.join(WORK, 'packages_table.json'), 'w'), indent=1)
    tb = sum(len(d['text'].encode()) for d in train_docs)
    hb = sum(len(d['text'].encode()) for d in held_docs)
    print(f'train packages {len(train_docs)} ({tb} bytes), held-out {len(held_docs)} ({hb} bytes)')


if __name__ == '__main__':
    {'download': download, 'build': build}[sys.argv[1]]()
