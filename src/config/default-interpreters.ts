/**
 * The interpreters offered when the config file names none, so that an empty
 * upaas.yml works on a Debian host. The shipped upaas.yml spells them out.
 */
export const DEFAULT_INTERPRETERS = {
  python: {
    any: {
      packages: ['python3', 'python3-venv', 'python3-pip'],
      env: { PYTHONUNBUFFERED: '1', PIP_DISABLE_PIP_VERSION_CHECK: '1' },
      actions: {
        setup: {
          main: [
            'if [ -f requirements.txt ]; then python3 -m venv .venv && .venv/bin/pip install -r requirements.txt; fi',
          ],
        },
      },
    },
    '3.11': {},
  },
  static: { any: {} },
};
