// A full SMART EHR launch in Debian's headless Chromium (issue 6 acceptance):
//   node smart.mjs LAUNCH_URL
// Opens Herald's /smart/launch URL, follows the authorization server
// (oidc-provider in tests/interop, which signs the test user in and
// consents without a form) back to Herald's /app, and prints one JSON line
// of what the clinician sees; exits 1 on the first broken step.
import puppeteer from "puppeteer-core";

const [launchUrl] = process.argv.slice(2);
const chromium = process.env.CHROMIUM || "/usr/bin/chromium";
const seen = { dialogs: [] };
const fail = (msg) => {
  console.log(JSON.stringify({ ok: false, error: msg, seen }));
  process.exit(1);
};

const browser = await puppeteer.launch({
  executablePath: chromium,
  headless: true,
  args: [
    "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
  ],
});
try {
  const page = await browser.newPage();
  // An XSS payload in the patient's name would open a dialog.
  page.on("dialog", async (d) => { seen.dialogs.push(d.message()); await d.dismiss(); });
  const hops = [];
  page.on("response", (r) => { if (r.request().isNavigationRequest()) hops.push(`${r.status()} ${new URL(r.url()).pathname}`); });
  const res = await page.goto(launchUrl, { waitUntil: "networkidle0" });
  seen.hops = hops;
  seen.url = page.url();
  seen.status = res.status();
  if (!new URL(seen.url).pathname.startsWith("/app")) fail(`landed on ${seen.url}`);
  seen.csp = res.headers()["content-security-policy"];
  seen.patientName = await page.$eval("#patient-name", (e) => e.textContent).catch(() => null);
  seen.patientId = await page.$eval("#patient-id", (e) => e.textContent).catch(() => null);
  seen.clinician = await page.$eval("#clinician", (e) => e.textContent).catch(() => null);
  seen.scripts = await page.$$eval("script", (s) => s.length);
  const cookies = await page.cookies();
  seen.cookies = cookies.map((c) => ({ name: c.name, httpOnly: c.httpOnly, sameSite: c.sameSite }));
  // Record a consent given in person through the page's own form.
  await page.select("select[name=channel]", "sms");
  await page.select("select[name=purpose]", "medication");
  await page.type("textarea[name=wording]", "May we text you about your prescriptions? Reply STOP to end.");
  await Promise.all([page.waitForNavigation(), page.click("#consent-form button")]);
  seen.afterConsent = new URL(page.url()).pathname;
  seen.consentRows = await page.$$eval("#consents tr", (r) => r.length - 1);
  console.log(JSON.stringify({ ok: true, seen }));
} catch (e) {
  fail(String(e));
} finally {
  await browser.close();
}
