using Akka.Configuration;
using MoCo.Actors.Checkpoints;
using MoCo.Actors.Persistence;
using MoCo.Actors.Workers;

namespace MoCo.Actors.Training;

/// <summary>The actor-system configuration that hosts a training run on this process.</summary>
public static class TrainingSystem
{
    /// <summary>The dispatchers a training director's children need: the workers' and the checkpointer's pinned threads.</summary>
    public static Config Dispatchers =>
        ConfigurationFactory.ParseString(WorkerActor.DispatcherHocon + "\n" + CheckpointerActor.DispatcherHocon);

    /// <summary>
    /// The dispatchers (<see cref="Dispatchers"/>) and the run journal: a SQLite file
    /// (<see cref="RunJournal.DatabaseFileName"/>) inside <paramref name="runDirectory"/>, created with the directory.
    /// </summary>
    /// <param name="runDirectory">The run directory.</param>
    /// <returns>The configuration; fall back to it from logging or other settings.</returns>
    public static Config ForRunDirectory(string runDirectory)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(runDirectory);
        Directory.CreateDirectory(runDirectory);
        return Dispatchers
            .WithFallback(RunJournal.Sqlite(Path.Combine(runDirectory, RunJournal.DatabaseFileName)));
    }
}
