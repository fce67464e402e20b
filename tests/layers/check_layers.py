#!/usr/bin/env python3
"""Checks that the build enforces the layers (docs/architecture.md "Layers").

Includes: for every pair of layers (L, M), compiles a throw-away file that
includes one header of M with exactly the include roots L's library gets.
It must compile when L may use M, and fail with "No such file" when it may
not: a deliberate upward include is refused.

Calls: every symbol a layer's library leaves undefined must be defined by a
library that layer may use, or by none of vessel's (libc and the other
system libraries).  This catches an upward call made through a local
prototype or a weak symbol, which no include view can see.

  check_layers.py --cc CC... --views DIR --build-root DIR --include DIR
                  --layer NAME=USES,... --lib NAME=PATH ...
"""
import argparse
import os
import subprocess
import sys
import tempfile

# One header per layer that a user of the layer would include.
HEADERS = {
    'util': 'util/error.h',
    'machine': 'machine/machine.h',
    'acpi': 'acpi/tables.h',
    'block': 'block/block.h',
    'boot': 'boot/boot.h',
    'hw': 'hw/device.h',
    'hv': 'hv/hyperv.h',
    'cpu': 'cpu/engines.h',
    'virtio': 'virtio/virtio_pci.h',
    'board': 'board/pc.h',
    'vmm': 'vmm/vm.h',
    'cli': 'cli/cli.h',
}


def compile_include(cc, args, layer, header, tmp):
    src = os.path.join(tmp, 'upward_%s.c' % layer)
    with open(src, 'w') as f:
        f.write('#include "%s"\nint layer_probe;\n' % header)
    cmd = cc + ['-std=gnu11', '-D_GNU_SOURCE', '-fsyntax-only', '-I' + os.path.join(args.views, layer),
                '-I' + args.build_root, '-I' + args.include, src]
    r = subprocess.run(cmd, capture_output=True, text=True)
    return r.returncode, r.stderr


def symbols(lib):
    out = subprocess.run(['nm', '--defined-only', '-g', lib], capture_output=True, text=True, check=True).stdout
    defined = {l.split()[-1] for l in out.splitlines() if len(l.split()) == 3}
    out = subprocess.run(['nm', '-u', lib], capture_output=True, text=True, check=True).stdout
    undefined = {l.split()[-1] for l in out.splitlines() if l.strip() and not l.endswith(':')}
    return defined, undefined


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--cc', nargs='+', required=True)
    ap.add_argument('--views', required=True)
    ap.add_argument('--build-root', required=True)
    ap.add_argument('--include', required=True)
    ap.add_argument('--layer', action='append', default=[])
    ap.add_argument('--lib', action='append', default=[])
    args = ap.parse_args()
    uses = {}
    for spec in args.layer:
        name, _, rest = spec.partition('=')
        uses[name] = set(filter(None, rest.split(','))) | {name}
    libs = dict(spec.split('=', 1) for spec in args.lib)
    missing = set(uses) - set(HEADERS)
    if missing:
        print('no probe header for layer(s) %s: add one to HEADERS' % ', '.join(sorted(missing)))
        return 1

    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        for layer in uses:
            for other in uses:
                header = HEADERS[other]
                rc, err = compile_include(args.cc, args, layer, header, tmp)
                if other in uses[layer]:
                    if rc != 0:
                        failures.append('%s may use %s, but including "%s" failed:\n%s' % (layer, other, header, err))
                elif rc == 0:
                    failures.append('%s must not see %s, but including "%s" compiled' % (layer, other, header))
                elif 'No such file' not in err:
                    failures.append('including "%s" from %s failed, not for want of the file:\n%s' % (header, layer, err))

    defined_by = {}
    undefined = {}
    for name, lib in libs.items():
        d, u = symbols(lib)
        undefined[name] = u
        for s in d:
            defined_by.setdefault(s, set()).add(name)
    for name, u in undefined.items():
        for s in sorted(u):
            owners = defined_by.get(s)
            if owners and not owners & uses[name]:
                failures.append('%s calls %s, defined in %s, which it may not use' % (name, s, '/'.join(sorted(owners))))

    for f in failures:
        print('FAIL:', f)
    print('%d layers, %d include probes, %d libraries: %s' % (len(uses), len(uses) ** 2, len(libs),
                                                            'ok' if not failures else '%d failures' % len(failures)))
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
