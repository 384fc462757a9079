// Compiles one Solidity file with solc-js and prints, per contract, the creation bytecode and
// the selectors (methodIdentifiers), as stable, sorted JSON. Called by build.sh.
'use strict';
const fs = require('fs');
const path = require('path');
const solc = require('solc');

const file = process.argv[2];
const source = fs.readFileSync(file, 'utf8');
const name = path.basename(file);
const input = {
  language: 'Solidity',
  sources: { [name]: { content: source } },
  settings: {
    evmVersion: process.env.EVM_VERSION,
    optimizer: { enabled: true, runs: 200 },
    // No metadata hash: the same source gives the same bytes on every machine.
    metadata: { bytecodeHash: 'none', appendCBOR: false },
    outputSelection: { '*': { '*': ['evm.bytecode.object', 'evm.methodIdentifiers'] } },
  },
};
const output = JSON.parse(solc.compile(JSON.stringify(input)));
const errors = (output.errors || []).filter((e) => e.severity === 'error');
for (const e of output.errors || []) process.stderr.write(e.formattedMessage + '\n');
if (errors.length > 0) process.exit(1);
if (solc.version().indexOf(process.env.SOLC_VERSION) !== 0) {
  process.stderr.write(`expected solc ${process.env.SOLC_VERSION}, got ${solc.version()}\n`);
  process.exit(1);
}
const contracts = {};
for (const [contract, out] of Object.entries(output.contracts[name]).sort()) {
  const ids = {};
  for (const [sig, sel] of Object.entries(out.evm.methodIdentifiers).sort()) ids[sig] = '0x' + sel;
  contracts[contract] = { bytecode: '0x' + out.evm.bytecode.object, methodIdentifiers: ids };
}
const result = {
  compiler: 'solc-js ' + solc.version(),
  evmVersion: process.env.EVM_VERSION,
  source: name,
  contracts,
};
process.stdout.write(JSON.stringify(result, null, 2) + '\n');
