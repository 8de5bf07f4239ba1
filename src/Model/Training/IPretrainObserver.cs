using MoCo.Model.Evaluation;

namespace MoCo.Model.Training;

/// <summary>Receives a run's progress (scalars only): a console display, a log, an actor.</summary>
public interface IPretrainObserver
{
    void RunStarting(Pretrainer trainer, bool resumed);

    void KnnAtStart(Accuracy accuracy);

    void StepCompleted(StepResult step, Pretrainer trainer);

    void EpochCompleted(EpochReport report);

    void CheckpointSaved(string path, string sha256, double seconds);
}
