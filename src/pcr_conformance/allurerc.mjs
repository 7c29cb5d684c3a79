// Allure 3 configuration of one pcr-conformance report (docs/concepts.md#reports). Written by pcr_conformance.report
// beside allure-results/ of reports/<kit>/<target>/; `allure awesome --config` reads it. Allure 3 takes its
// categories from here, not from categories.json (which the plugin writes for Allure 2 users).
// Categories are matched in order, the first match wins. Failure messages start with the ID of the broken
// requirement (docs/concepts.md#outcomes), after the exception name ("AssertionError: RPT-004 AddLoans: ...").

// Allure 3.18's quality gate calls Iterator.prototype.toArray, which Node 20 lacks (Node 22 has it).
const iteratorPrototype = Object.getPrototypeOf(Object.getPrototypeOf([].values()));
if (typeof iteratorPrototype.toArray !== "function") {
  Object.defineProperty(iteratorPrototype, "toArray", {
    value() { return Array.from(this); }, writable: true, configurable: true,
  });
}

// The severities of the kit's deciding levels (must -> critical; allure_support.SEVERITY).
const DECIDING_SEVERITIES = __DECIDING_SEVERITIES__;
const severity = (tr) => (tr.labels ?? []).find((l) => l.name === "severity")?.value;

export default {
  name: __REPORT_NAME__,
  // History of this kit against this target: one JSON line per run, kept in reports/<kit>/<target>/history.jsonl
  // (pcr-conformance carries it over from the previous report folder). Relative to the folder the report is
  // generated in. pcr-conformance sets PCR_ALLURE_APPEND_HISTORY=1 only for results not yet in the history,
  // so regenerating a report (`pcr-conformance report`) or running `allure quality-gate` adds no point.
  historyPath: "./history.jsonl",
  historyLimit: 100,
  appendHistory: process.env.PCR_ALLURE_APPEND_HISTORY === "1",
  // The quality gate mirrors the verdict (docs/concepts.md#verdicts-and-exit-codes): a failed test of a deciding
  // requirement makes the kit not conformant; a broken test, or no test at all, means the run could not judge.
  // `npx allure quality-gate --config allurerc.mjs allure-results` exits 1 when a rule is broken.
  qualityGate: {
    rules: [
      {
        id: "deciding-requirement-failed",
        maxFailures: 0,
        filter: (tr) => tr.status === "failed" && DECIDING_SEVERITIES.includes(severity(tr)),
      },
      { id: "test-could-not-run", maxFailures: 0, filter: (tr) => tr.status === "broken" },
      { id: "nothing-ran", minTestsCount: 1 },
    ],
  },
  categories: [
    {
      // Strict xfail from the target's expectations file; a stale entry (the bug is fixed) shows as XPASS.
      id: "known-deviation",
      name: "Known deviation",
      matchers: [
        { statuses: ["skipped"], message: /^XFAIL/ },
        { statuses: ["failed", "broken"], message: /XPASS/ },
      ],
    },
    {
      id: "not-claimed",
      name: "Not claimed (skipped)",
      matchers: [{ statuses: ["skipped"] }],
    },
    {
      id: "server-error",
      name: "Server error (5xx)",
      matchers: [
        { statuses: ["failed"], message: /\b(actual|got|status|HTTP|answered)\b[^0-9\n]{0,12}5\d\d\b/i },
        { statuses: ["failed"], message: /\b5\d\d (Internal Server Error|Bad Gateway|Service Unavailable)/i },
      ],
    },
    {
      id: "security-violation",
      name: "Security violation",
      matchers: [{ statuses: ["failed"], message: /\bSEC-\d{3}\b/ }],
    },
    {
      id: "contract-violation",
      name: "Contract violation (schema)",
      // ENV-014 (response schema), anything naming the schema, and the other envelope and HTTP rules (ENV-…).
      matchers: [
        { statuses: ["failed"], message: /\bENV-014\b|schema/i },
        { statuses: ["failed"], message: /\bENV-\d{3}\b/ },
      ],
    },
    {
      id: "business-rule-violation",
      name: "Business-rule violation",
      matchers: [{ statuses: ["failed"], message: /\b(RPT|BAT|EXT|IDN|AUT|BAN)-\d{3}\b/ }],
    },
    {
      // Could not run: connection refused, TLS failure, timeout, bad configuration (never a conformance failure).
      id: "harness-or-infrastructure",
      name: "Harness or infrastructure",
      matchers: [{ statuses: ["broken"] }],
    },
  ],
};
