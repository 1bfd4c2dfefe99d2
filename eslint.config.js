// ESLint, zero warnings. Besides the usual TypeScript rules, the import rules make the layer table of STYLE.md true:
//   ml/        imports nothing of ours but ml/, and no Electron, DOM or file-system modules;
//   main/      imports ml/ and main/, never renderer/;
//   renderer/  imports renderer/, and only *types* from the API contract (main/api/contract.ts).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import reactHooks from 'eslint-plugin-react-hooks';
import globals from 'globals';

const nodeBuiltinsForbiddenInMl = ['fs', 'node:fs', 'fs/promises', 'node:fs/promises', 'electron', 'react', 'react-dom', 'konva', 'sharp'];

export default tseslint.config(
  { ignores: ['node_modules/**', 'out/**', 'dist/**', 'test-results/**', 'playwright-report/**', 'sample-data/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
    },
  },
  {
    files: ['ml/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          paths: nodeBuiltinsForbiddenInMl.map((name) => ({ name, message: 'ml/ is pure compute: no file system, Electron or UI.' })),
          patterns: [{ group: ['**/main/**', '**/renderer/**', '**/e2e/**'], message: 'ml/ may import only ml/.' }],
        },
      ],
    },
  },
  {
    files: ['main/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        { patterns: [{ group: ['**/renderer/**'], message: 'main/ may import only ml/ and main/.' }] },
      ],
    },
  },
  {
    files: ['renderer/**/*.ts', 'renderer/**/*.tsx'],
    languageOptions: { globals: { ...globals.browser } },
    plugins: { 'react-hooks': reactHooks },
    rules: {
      'react-hooks/rules-of-hooks': 'error',
      'react-hooks/exhaustive-deps': 'error',
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          paths: ['fs', 'node:fs', 'path', 'node:path', 'electron', 'onnxruntime-node', 'sharp', '@tensorflow/tfjs'].map((name) => ({
            name,
            message: 'renderer/ is UI only: reach the engine through the API contract.',
          })),
          patterns: [
            { group: ['**/ml/**', '**/main/**', '!**/main/api/contract'], message: 'renderer/ may import only renderer/ and types from main/api/contract.' },
            { group: ['**/main/api/contract'], allowTypeImports: true, message: 'renderer/ may import only *types* from the API contract.' },
          ],
        },
      ],
    },
  },
);
