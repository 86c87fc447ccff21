#!/bin/sh
":" //; case $0 in */*) f=$0;; *) f=./$0;; esac; if [ -L "$f" ]; then f=$(readlink -f -- "$f"); fi; if [ "${NODE_EXTRA_CA_CERTS+set}" ]; then export MONOCEROS_SAVED_NODE_EXTRA_CA_CERTS="$NODE_EXTRA_CA_CERTS"; unset NODE_EXTRA_CA_CERTS; fi; exec node "${f%/*}/monoceros-loader.cjs" "$@"
// dist/monoceros: one file that is both a POSIX shell script (the line above, when it is run as an
// executable: `./dist/monoceros`, npm's bin link, the Docker ENTRYPOINT) and an ES module (when it
// is run as `node dist/monoceros`). Both start dist/monoceros-loader.cjs, which runs the bundle.
//
// The shell's line finds the folder this file is in (through a symlink such as npm's bin link),
// then keeps NODE_EXTRA_CA_CERTS away from Node: Node reads that file of TLS certificates before any
// JavaScript runs, which costs about 80 ms and 2.5 MiB at each start here, and Monoceros makes no
// TLS connection. The loader puts the variable back before any worker starts, so workers see it
// unchanged. Run as `node dist/monoceros`, neither saving happens (nor the 7 ms this module costs).
import { createRequire } from "node:module";

createRequire(import.meta.url)("./monoceros-loader.cjs");
