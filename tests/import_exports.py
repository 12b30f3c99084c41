"""Tiny hand-written exports for the importer tests: each file is a few lines of CSV text."""

from __future__ import annotations

import json
from pathlib import Path

from crm_lab.db import reading


def write_export(folder: Path, files: dict[str, str]) -> Path:
    """Write ``{"Opportunity.csv": "Id,...\\n006A,..."}`` into ``folder``; return the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text.strip() + "\n", encoding="utf-8")
    return folder


def stored_events(db: Path, aggregate_type: str) -> list[tuple]:
    """(aggregate_id, event_id, event_type, occurred_at as ISO text, seq, payload as a dict)."""
    with reading(db) as con:
        rows = con.sql(
            "SELECT aggregate_id, event_id, event_type, strftime(occurred_at, '%Y-%m-%dT%H:%M:%SZ'), seq, CAST(payload AS VARCHAR) "
            "FROM events WHERE aggregate_type = ? ORDER BY aggregate_id, order_key",
            params=[aggregate_type],
        ).fetchall()
    return [(*row[:5], json.loads(row[5])) for row in rows]


def fetch(db: Path, query: str) -> list[tuple]:
    with reading(db) as con:
        return con.sql(query).fetchall()


SALESFORCE = {
    "User.csv": """
Id,FirstName,LastName,Email,Title,Department,IsActive,CreatedDate
005A,Ada,Lovelace,ada@example.com,AE,SMB,true,2020-01-06T00:00:00.000Z
005B,Alan,Turing,alan@example.com,AE,Enterprise,true,2021-05-03T00:00:00.000Z
""",
    "Account.csv": """
Id,Name,Industry,NumberOfEmployees,BillingLatitude,BillingLongitude,OwnerId,CreatedDate
001X,Northwind,retail,120,47.6,-122.3,005A,2024-01-02T09:00:00.000Z
""",
    "Opportunity.csv": """
Id,AccountId,OwnerId,Name,StageName,Amount,CurrencyIsoCode,CloseDate,IsClosed,IsWon,Loss_Reason__c,CreatedDate
006A,001X,005B,Northwind renewal,Closed Won,1200.00,USD,2024-03-20,true,true,,2024-03-01T10:15:00.000Z
006B,001X,005A,Northwind expansion,Closed Lost,500,USD,2024-04-30,true,false,price,2024-03-05T08:00:00.000+0000
""",
    "OpportunityHistory.csv": """
Id,OpportunityId,StageName,Amount,CloseDate,Probability,ForecastCategory,CreatedDate,CreatedById
0081,006A,Prospecting,1000.00,2024-03-31,10,Pipeline,2024-03-01T10:15:00.000Z,005A
0082,006A,Proposal/Price Quote,1000.00,2024-03-31,60,Best Case,2024-03-10T12:00:00.000Z,005A
0083,006A,Proposal/Price Quote,1200.00,2024-03-31,60,Best Case,2024-03-12T09:30:00.000Z,005A
0084,006A,Proposal/Price Quote,1200.00,2024-04-15,60,Best Case,2024-03-14T09:30:00.000Z,005A
0085,006A,Closed Won,1200.00,2024-03-20,100,Closed,2024-03-20T16:00:00.000Z,005B
0086,006B,Qualification,500,2024-04-30,20,Pipeline,2024-03-05T08:00:00.000Z,005A
0087,006B,Closed Lost,500,2024-04-30,0,Omitted,2024-03-25T08:00:00.000Z,005A
0088,006B,Qualification,500,2024-04-30,20,Pipeline,2024-04-02T08:00:00.000Z,005A
0089,006B,Closed Lost,500,2024-04-30,0,Omitted,2024-04-20T08:00:00.000Z,005A
""",
    "OpportunityFieldHistory.csv": """
Id,OpportunityId,Field,OldValue,NewValue,CreatedDate,CreatedById
0171,006A,Owner,005A,005B,2024-03-15T11:00:00.000Z,005A
0172,006A,Owner,Ada Lovelace,Alan Turing,2024-03-15T11:00:00.000Z,005A
""",
    "Lead.csv": """
Id,FirstName,LastName,Company,Status,LeadSource,Industry,NumberOfEmployees,OwnerId,Score__c,IsConverted,ConvertedDate,ConvertedOpportunityId,ConvertedAccountId,ConvertedContactId,CreatedDate
00Q1,Grace,Hopper,Northwind,Closed - Converted,web,retail,120,005A,80,true,2024-03-01,006A,001X,003C,2024-02-20T09:00:00.000Z
00Q2,Ada,King,Acme,Closed - Not Converted,event,energy,40,005B,10,false,,,,,2024-02-21T09:00:00Z
""",
    "LeadHistory.csv": """
Id,LeadId,Field,OldValue,NewValue,CreatedDate,CreatedById
017L1,00Q1,Score__c,55,80,2024-02-25T10:00:00.000Z,005A
017L2,00Q2,Status,Working - Contacted,Closed - Not Converted,2024-02-28T10:00:00.000Z,005B
""",
    "Task.csv": """
Id,WhoId,WhatId,AccountId,OwnerId,Subject,Type,TaskSubtype,Status,ActivityDate,CallDurationInSeconds,CompletedDateTime,CreatedDate,LastModifiedDate,IsDeleted
00T1,00Q2,,,005B,Intro call,Call,Call,Completed,2024-02-22,290,,2024-02-22T15:00:00.000Z,2024-02-22T15:00:00.000Z,false
00T2,,006A,,005A,Proposal sent,,Email,Completed,2024-03-10,,,2024-03-10T12:05:00.000Z,2024-03-10T12:05:00.000Z,false
00T3,003C,,001X,005A,Call back,Call,Task,Completed,2024-02-23,,2024-02-24T09:30:00.000Z,2024-02-23T08:00:00.000Z,2024-02-24T09:30:00.000Z,false
00T4,00Q2,,,005B,Send brochure,,Task,Completed,2024-02-23,,,2024-02-23T10:00:00.000Z,2024-02-26T10:00:00.000Z,true
00T5,00Q9,500C,,005B,Newsletter,,ListEmail,Completed,2024-02-24,,,2024-02-24T10:00:00.000Z,2024-02-24T10:00:00.000Z,false
""",
    "Event.csv": """
Id,WhoId,WhatId,AccountId,OwnerId,Subject,Type,ActivityDateTime,ActivityDate,DurationInMinutes,CreatedDate,LastModifiedDate,IsDeleted
00U1,003C,006A,001X,005B,Kick-off,Meeting,2024-03-21T14:00:00.000Z,2024-03-21,45,2024-03-18T09:00:00.000Z,2024-03-18T09:00:00.000Z,false
00U2,00Q1,,,005A,Trade show,,,2024-02-21,,2024-02-20T09:30:00.000Z,2024-02-20T09:30:00.000Z,false
""",
}
