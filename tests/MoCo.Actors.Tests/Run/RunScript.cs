using MoCo.Actors.Run;

namespace MoCo.Actors.Tests.Run;

/// <summary>A short, valid run as recorder commands: two workers, an epoch, a checkpoint, one leaves, a second epoch, done.</summary>
internal static class RunScript
{
    public static readonly WorkerInfo W0 = new("w0", "node-a", "cpu");
    public static readonly WorkerInfo W1 = new("w1", "node-b", "cuda:0");

    public static EpochMetrics Metrics(double loss, double? knn = null)
    {
        return new EpochMetrics(loss, 0.4, 0.03, knn, knn is null ? null : knn + 0.3, 10.0, 1500.0);
    }

    public static IReadOnlyList<RunRecorder.ICommand> Commands(string runId)
    {
        return
        [
            new RunRecorder.StartRun(runId, "{\"epochs\":2,\"batch\":256}"),
            new RunRecorder.JoinWorker(W0),
            new RunRecorder.JoinWorker(W1),
            new RunRecorder.StartGeneration([W0, W1], 0),
            new RunRecorder.RecordEpoch(0, 100, Metrics(7.1)),
            new RunRecorder.RecordCheckpoint($"/runs/{runId}/ckpt-0.pt", new string('e', 64), 0, 100),
            new RunRecorder.LeaveWorker("w1", "node-b unreachable"),
            new RunRecorder.StartGeneration([W0], 100),
            new RunRecorder.RecordEpoch(1, 200, Metrics(6.4, knn: 0.35)),
            new RunRecorder.CompleteRun(200),
        ];
    }
}
