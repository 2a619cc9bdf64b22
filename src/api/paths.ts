/** Where the API lives on the HTTP port: every route is under API_PATH. */
export const API_PATH = '/api/v1';
