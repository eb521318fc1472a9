/*
    learnstream's adapter for ADL's cmi5 LMS Test Suite (github:adlnet/CATAPULT, lts/).
    Copied to the suite's lts/lib/lms.custom.js by tests/cmi5/run-catapult.sh; the suite
    itself never enters this repository.

    Environment: LMS_URL (the progress service, e.g. http://127.0.0.1:8716), LMS_OPERATOR
    ("key:secret", operator credentials), LMS_LRS_CREDENTIAL ("key:secret", an LRS key
    with scope all, to read the statements back).
*/
const Wreck = require("@hapi/wreck"),
    {InvalidPackageError} = require("./errors");

const base = () => (process.env.LMS_URL || "http://127.0.0.1:8716").replace(/\/$/, ""),
    basic = (pair) => `Basic ${Buffer.from(pair).toString("base64")}`,
    operator = () => basic(process.env.LMS_OPERATOR || "ops:ops-secret"),
    courses = [];

const call = async (method, path, payload, headers = {}) => {
    const response = await Wreck.request(method, `${base()}${path}`, {
            headers: {Authorization: operator(), ...(payload !== undefined && !Buffer.isBuffer(payload) ? {"Content-Type": "application/json"} : {}), ...headers},
            payload: payload === undefined ? undefined : (Buffer.isBuffer(payload) ? payload : JSON.stringify(payload))
        }),
        body = await Wreck.read(response);
    let parsed = null;
    try {
        parsed = body.length ? JSON.parse(body.toString()) : null;
    }
    catch (ex) {
        parsed = body.toString();
    }
    return {status: response.statusCode, body: parsed};
};

const readAll = (stream) => new Promise((resolve, reject) => {
    const chunks = [];
    stream.on("data", (chunk) => chunks.push(chunk));
    stream.on("end", () => resolve(Buffer.concat(chunks)));
    stream.on("error", reject);
});

module.exports = {
    setup: async () => {},
    teardown: async () => {},

    getLrsEndpoint: () => `${base()}/xapi`,
    getLrsAuthHeader: () => basic(process.env.LMS_LRS_CREDENTIAL || ""),

    importCourse: async (stream, contentType, filename) => {
        const result = await call("POST", "/cmi5/courses", await readAll(stream), {"Content-Type": contentType});
        if (result.status === 400) {
            throw new InvalidPackageError(`Invalid package ${filename}: ${result.body && result.body.message}`);
        }
        if (result.status !== 201) {
            throw new Error(`Failed import of ${filename}: ${result.status} ${JSON.stringify(result.body)}`);
        }
        courses.push(result.body.id);
        return result.body.id;
    },

    getLaunchUrl: async (courseId, auIndex, actor, {registration, launchMode}) => {
        const payload = {au: auIndex, actor};
        if (registration) {
            payload.registration = registration;
        }
        if (launchMode) {
            payload.launchMode = launchMode;
        }
        const result = await call("POST", `/cmi5/courses/${courseId}/launches`, payload);
        if (result.status !== 201) {
            throw new Error(`Failed launch: ${result.status} ${JSON.stringify(result.body)}`);
        }
        return result.body.url;
    },

    cleanup: async () => {
        while (courses.length) {
            await call("DELETE", `/cmi5/courses/${courses.pop()}`);
        }
    },

    hasWaive: () => true,
    waiveAU: async (registration, auIndex, reason) => {
        const result = await call("POST", `/cmi5/registrations/${registration}/waivers`, {au: auIndex, reason});
        if (result.status !== 201) {
            throw new Error(`Failed waive: ${result.status} ${JSON.stringify(result.body)}`);
        }
    },

    hasAbandon: () => true,
    abandonSession: async (sessionId) => {
        const result = await call("POST", `/cmi5/sessions/${sessionId}/abandonment`);
        if (result.status !== 204) {
            throw new Error(`Failed abandon: ${result.status} ${JSON.stringify(result.body)}`);
        }
    }
};
