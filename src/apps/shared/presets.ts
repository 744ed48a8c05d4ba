/** The schedule presets the pages offer: the library's (src/skip/presets.ts). */
export {
  SCHEDULE_PRESETS as PRESETS,
  linearForTarget,
  linearMean,
  predictedSpeedup,
  presetSchedule,
  scheduleLabel,
  type Preset,
} from '../../index.ts';
