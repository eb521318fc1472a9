// jest-puppeteer for ADL's cmi5 LMS Test Suite on a headless machine: Debian's Chromium,
// no sandbox, and no devtools (the suite's own config opens a visible window).
module.exports = {
    launch: {
        executablePath: "/usr/bin/chromium",
        headless: true,
        args: ["--no-sandbox"]
    }
};
