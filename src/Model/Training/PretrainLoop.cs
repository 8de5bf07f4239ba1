using System.Diagnostics;
using System.Globalization;
using MoCo.Model.Checkpoints;
using MoCo.Model.Evaluation;

namespace MoCo.Model.Training;

/// <summary>
/// The single-process pretraining loop: steps, the kNN monitor at epoch ends, metrics.csv, checkpoints
/// (every n steps and at each epoch end, the last k kept plus the best by kNN top-1).
/// </summary>
public sealed class PretrainLoop
{
    public const string MetricsFile = MetricsCsv.FileName;

    private readonly Pretrainer _trainer;
    private readonly string _runDir;
    private readonly IPretrainObserver _observer;
    private readonly int _evalThreads;
    private string? _bestPath;
    private double _bestTop1 = double.NegativeInfinity;

    public PretrainLoop(Pretrainer trainer, string runDir, IPretrainObserver observer, int evalThreads)
    {
        _trainer = trainer;
        _runDir = runDir;
        _observer = observer;
        _evalThreads = evalThreads;
        Directory.CreateDirectory(runDir);
    }

    public void Run(bool resumed, bool knnAtStart, CancellationToken cancellation)
    {
        var config = _trainer.Config;
        _observer.RunStarting(_trainer, resumed);
        if (knnAtStart && _trainer.GlobalStep == 0 && config.KnnEvery > 0)
        {
            _observer.KnnAtStart(_trainer.EvaluateKnn(_evalThreads));
        }
        var checkpoints = new CheckpointDirectory(_runDir);
        while (!_trainer.Finished)
        {
            cancellation.ThrowIfCancellationRequested();
            int epoch = _trainer.Epoch;
            var clock = Stopwatch.StartNew();
            double lossSum = 0, accSum = 0, lr = 0;
            int steps = 0;
            while (_trainer.Epoch == epoch)
            {
                cancellation.ThrowIfCancellationRequested();
                var result = _trainer.TrainStep();
                lossSum += result.Loss;
                accSum += result.InstanceAcc;
                lr = result.Lr;
                steps++;
                _observer.StepCompleted(result, _trainer);
                if (config.CheckpointEverySteps > 0 && _trainer.GlobalStep % config.CheckpointEverySteps == 0 && _trainer.Epoch == epoch)
                {
                    Save(checkpoints);
                }
            }
            double trainSeconds = clock.Elapsed.TotalSeconds;
            double wait = _trainer.LoaderWaitSeconds;
            Accuracy? knn = null;
            if (config.KnnEvery > 0 && ((epoch + 1) % config.KnnEvery == 0 || _trainer.Finished))
            {
                knn = _trainer.EvaluateKnn(_evalThreads);
            }
            var report = new EpochReport(epoch, steps, lossSum / steps, accSum / steps, lr, knn, clock.Elapsed.TotalSeconds,
                steps * config.BatchSize / trainSeconds, wait);
            AppendMetrics(report);
            var path = Save(checkpoints, knn);
            if (knn is not null && knn.Top1 > _bestTop1)
            {
                _bestTop1 = knn.Top1;
                _bestPath = path;
            }
            checkpoints.Prune(config.KeepCheckpoints, _bestPath is null ? null : [_bestPath]);
            _observer.EpochCompleted(report);
        }
    }

    private string Save(CheckpointDirectory checkpoints, Accuracy? knn = null)
    {
        var clock = Stopwatch.StartNew();
        var path = checkpoints.PathFor(_trainer.Epoch, _trainer.GlobalStep);
        var extra = new Dictionary<string, string>();
        if (knn is not null)
        {
            extra["knn-top1"] = knn.Top1.ToString("R", CultureInfo.InvariantCulture);
        }
        var sha = _trainer.SaveCheckpoint(path, extra);
        _observer.CheckpointSaved(path, sha, clock.Elapsed.TotalSeconds);
        return path;
    }

    private void AppendMetrics(EpochReport r)
    {
        var path = Path.Combine(_runDir, MetricsFile);
        bool header = !File.Exists(path);
        using var writer = new StreamWriter(path, append: true);
        if (header)
        {
            writer.WriteLine(MetricsCsv.Header);
        }
        writer.WriteLine(MetricsCsv.Row(r.Epoch, r.Steps, r.Loss, r.InstanceAcc, r.Lr, r.Knn?.Top1, r.Knn?.Top5, r.Seconds,
            r.ImagesPerSecond, r.LoaderWaitSeconds));
    }
}
