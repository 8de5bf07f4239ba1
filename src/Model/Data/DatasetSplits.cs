namespace MoCo.Model.Data;

/// <summary>A data set opened by <see cref="DataSource.Open"/>: its two splits, what the load found, and one line saying what it is.</summary>
/// <param name="Train">The train split, which defines the classes.</param>
/// <param name="Test">The test split, labelled with the train split's classes.</param>
/// <param name="Report">Both splits' load reports together; Elapsed is the whole open.</param>
/// <param name="Description">One line for the log: the source, the counts, the classes and how images are held.</param>
public sealed record DatasetSplits(IImageDataset Train, IImageDataset Test, DataLoadReport Report, string Description);
