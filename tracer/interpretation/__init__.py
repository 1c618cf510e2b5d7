"""The interpretation layer: the CPython bytecode interpreter (version tables, decoding, frames,
generators, the object protocols, the call policy, the opcode handlers) and loop rolling (`rolling`,
`loopbody`, `fastforward`, `effects`).  It imports the recording and arrays layers, never the rules:
those are entered into the registry by the package on top (tracer/__init__.py)."""
