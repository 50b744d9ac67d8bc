// ESLint 9 flat config: TypeScript rules for src/, plus bans that keep the bundle CSP-safe.
import eslint from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['lib/', 'node_modules/', 'jupyterlab_hdh/', 'scripts/', '.venv/'] },
  eslint.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['src/**/*.ts'],
    rules: {
      '@typescript-eslint/no-namespace': 'off',
      '@typescript-eslint/no-explicit-any': 'error',
      'no-eval': 'error',
      'no-implied-eval': 'error',
      'no-new-func': 'error',
      'no-restricted-properties': [
        'error',
        { property: 'innerHTML', message: 'Use textContent (dom.ts h()).' },
        { property: 'outerHTML', message: 'Use textContent (dom.ts h()).' },
        { property: 'insertAdjacentHTML', message: 'Use textContent (dom.ts h()).' }
      ],
      eqeqeq: ['error', 'smart'],
      curly: ['error', 'all']
    }
  }
);
