// Drives the patient preference page in Debian's headless Chromium:
//   node prefpage.mjs BASE_URL GOOD_TOKEN EXPIRED_TOKEN TAMPERED_TOKEN
// Prints one JSON line of what it saw; exits 1 on the first broken step.
import puppeteer from "puppeteer-core";

const [base, good, expired, tampered] = process.argv.slice(2);
const chromium = process.env.CHROMIUM || "/usr/bin/chromium";
const seen = {};
const fail = (msg) => {
  console.log(JSON.stringify({ ok: false, error: msg, seen }));
  process.exit(1);
};

const browser = await puppeteer.launch({
  executablePath: chromium,
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
try {
  const page = await browser.newPage();
  let res = await page.goto(`${base}/p/${tampered}`);
  seen.tampered = res.status();
  if (res.status() !== 403) fail(`tampered link answered ${res.status()}`);
  if (!(await page.content()).includes("not valid")) fail("tampered link page does not say why");

  res = await page.goto(`${base}/p/${expired}`);
  seen.expired = res.status();
  if (res.status() !== 410) fail(`expired link answered ${res.status()}`);

  res = await page.goto(`${base}/p/${good}`);
  if (res.status() !== 200) fail(`good link answered ${res.status()}`);
  seen.csp = res.headers()["content-security-policy"];
  const consentBox = await page.$("#written-consent");
  if (!consentBox) fail("no written-consent checkbox");
  seen.preChecked = await page.$eval("#written-consent", (e) => e.checked);
  if (seen.preChecked) fail("the written-consent checkbox is pre-checked");
  seen.wording = await page.$eval("label:has(#written-consent)", (e) => e.textContent.trim());

  // Change the language and give written consent.
  await page.select("#language", "es-US");
  await page.click("#written-consent");
  await Promise.all([page.waitForNavigation(), page.click("#save")]);
  if (!(await page.$("#saved"))) fail("no confirmation after saving");
  seen.language = await page.$eval("#language", (e) => e.value);
  if (seen.language !== "es-US") fail(`language is ${seen.language}`);
  if (!(await page.$("#marketing-on"))) fail("written consent not shown as given");

  // Confidential communications: email only.
  await page.click("#email-only");
  await Promise.all([page.waitForNavigation(), page.click("#save")]);
  seen.blocked = await page.$eval("#blocked", (e) => e.textContent.trim()).catch(() => null);
  if (!seen.blocked) fail("email-only request not shown");

  // Stop everything.
  await Promise.all([page.waitForNavigation(), page.click("#optout")]);
  if (!(await page.$("#saved"))) fail("no confirmation after opting out");
  seen.afterOptOut = await page.$$eval("input[type=checkbox][name^='allow.']", (es) => es.filter((e) => e.checked).length);
  if (seen.afterOptOut !== 0) fail(`${seen.afterOptOut} boxes still allowed after opting out`);
  console.log(JSON.stringify({ ok: true, seen }));
} finally {
  await browser.close();
}
