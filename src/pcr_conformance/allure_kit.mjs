// Several kits' reports in one Node process (issue 12): for each job, the single-file Allure 3 report, as
// `allure awesome --single-file --config C --cwd D --group-by G`, and the quality gate of the same config over
// the same results, as `allure quality-gate`, from one reading of allure-results/. Each kit keeps its own
// AllureReport (its own history file, quality gate and labels); the kits of one process are built at the same
// time, so that one kit's file reads overlap another's work, and Allure's modules are loaded once per process.
// Run by pcr_conformance.report (one such process per core), which falls back to the two `allure` commands per
// kit when this cannot start.
//   node allure_kit.mjs NODE_MODULES JOBS_JSON
// JOBS_JSON: a file holding [{results, output, config, cwd, groupBy, appendHistory}, ...].
// Prints one line per job as it ends: "PCR-KIT <index> <json>", the json {"ok": true, "failed": [rules] | null}
// (null: the config has no quality gate) or {"ok": false, "error": "<one line>"}.
import { readFile, realpath } from "node:fs/promises";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const KITS_AT_ONCE = 3; // each holds its results in memory (about 0.5 GB for 1 250 tests)

const [modules, jobsFile] = process.argv.slice(2);
const load = (pkg) => import(pathToFileURL(join(modules, pkg, "dist", "index.js")).href);
const { AllureReport, readConfig } = await load(join("@allurereport", "core"));
const { default: AwesomePlugin } = await load(join("@allurereport", "plugin-awesome"));
const jobs = JSON.parse(await readFile(jobsFile, "utf8"));

async function build(job) {
  const cwd = await realpath(job.cwd);
  // The history file of this kit: allurerc.mjs names it relative to the folder, which Allure resolves against
  // the process's working directory, shared here by several kits.
  const config = await readConfig(cwd, job.config, { output: job.output, historyPath: join(cwd, "history.jsonl") });
  config.appendHistory = job.appendHistory; // allurerc.mjs reads it from the environment, one value per process
  const options = { singleFile: true, groupBy: job.groupBy.split(",") };
  config.plugins = [{ id: "awesome", enabled: true, options, plugin: new AwesomePlugin(options) }];
  const report = new AllureReport(config);
  await report.start();
  await report.readDirectory(job.results);
  await report.done();
  if (!report.hasQualityGate) {
    return { ok: true, failed: null };
  }
  const trs = await report.store.allTestResults({ includeRetries: false });
  const { results: gate } = await report.validate({ trs });
  return { ok: true, failed: gate.filter(({ success }) => !success).map(({ rule }) => rule) };
}

const queue = jobs.map((job, index) => ({ job, index }));
async function lane() {
  while (queue.length) {
    const { job, index } = queue.shift();
    let outcome;
    try {
      outcome = await build(job);
    } catch (error) {
      outcome = { ok: false, error: String(error?.stack ?? error).split("\n")[0].slice(0, 300) };
    }
    console.log(`PCR-KIT ${index} ${JSON.stringify(outcome)}`);
  }
}
await Promise.all(Array.from({ length: Math.min(KITS_AT_ONCE, jobs.length) }, lane));
