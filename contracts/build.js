// Compiles contracts/src/*.sol with solc-js (from npm) into one JSON file of ABIs and bytecode:
//   node contracts/build.js <out.json>
// Offline and deterministic: the compiler is the npm package, imports are local files.
const fs = require("fs");
const path = require("path");
const solc = require("solc");

const src = path.join(__dirname, "src");
const sources = {};
for (const f of fs.readdirSync(src).filter((f) => f.endsWith(".sol")).sort()) {
  sources[f] = { content: fs.readFileSync(path.join(src, f), "utf8") };
}
const input = {
  language: "Solidity",
  sources,
  settings: {
    optimizer: { enabled: true, runs: 200 },
    evmVersion: "cancun",
    outputSelection: { "*": { "*": ["abi", "evm.bytecode.object"] } },
  },
};
const findImports = (p) => {
  const file = path.join(src, path.basename(p));
  return fs.existsSync(file) ? { contents: fs.readFileSync(file, "utf8") } : { error: `not found: ${p}` };
};
const out = JSON.parse(solc.compile(JSON.stringify(input), { import: findImports }));
const errors = (out.errors || []).filter((e) => e.severity === "error");
for (const e of out.errors || []) console.error(e.formattedMessage);
if (errors.length) process.exit(1);
const result = { compiler: solc.version(), contracts: {} };
for (const file of Object.keys(out.contracts)) {
  for (const [name, c] of Object.entries(out.contracts[file])) {
    result.contracts[name] = { abi: c.abi, bytecode: "0x" + c.evm.bytecode.object };
  }
}
fs.writeFileSync(process.argv[2] || "contracts.json", JSON.stringify(result));
console.error(`compiled ${Object.keys(result.contracts).join(", ")} with solc ${result.compiler}`);
