export {
  PROBLEM_CONTENT_TYPE,
  type Problem,
  type ProblemInit,
  type ProblemOfOptions,
  parseProblem,
  problem,
  problemOf,
  problemType,
  writeProblem,
} from './Problem.js';
