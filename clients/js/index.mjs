// ES module entry: the implementation is index.cjs (one copy of the logic for both formats).
import resume from './index.cjs';

export const { withResume, install } = resume;
export default resume;
